//! The publish script: what Redis does, in one atomic step, for each publish of every node.
//!
//! For a batch of events (one, for a single publish) it refuses all of them if an id is still in
//! the shared log; otherwise, for each in order, it takes the next number of the deployment's one
//! sequence, gives the event a time-based id if it has none (microseconds since the Unix epoch,
//! strictly increasing, unlike any id the log holds), appends it to the log (stream entry
//! `<seq>-1`, trimmed to the history length, the index of ids trimmed with it) and publishes it on
//! the deployment's channel. The epoch is Redis's own birth, made on first use: after Redis lost
//! its data it is new, so nodes know that their sequence numbers start again.
//!
//! Every key holds the prefix as a hash tag, so that a Redis Cluster keeps them in one slot.

/// The keys of one deployment.
#[derive(Debug, Clone)]
pub struct Keys {
    /// The last sequence number given.
    pub seq: String,
    /// The last id given.
    pub last_id: String,
    /// The ids the log holds, with their sequence numbers.
    pub ids: String,
    /// The log: one stream entry per event, `<seq>-1`.
    pub log: String,
    /// When this Redis's data began, in microseconds since the Unix epoch.
    pub epoch: String,
    /// The channel every node listens on.
    pub channel: String,
}

impl Keys {
    /// The keys of the deployment named `prefix`.
    pub fn new(prefix: &str) -> Self {
        let key = |name: &str| format!("{{{prefix}}}:{name}");
        Self {
            seq: key("seq"),
            last_id: key("last-id"),
            ids: key("ids"),
            log: key("log"),
            epoch: key("epoch"),
            channel: key("events"),
        }
    }

    /// The keys in the order the script reads them.
    pub fn for_script(&self) -> [&str; 5] {
        [&self.seq, &self.last_id, &self.ids, &self.log, &self.epoch]
    }
}

/// Arguments: the channel, the log's length, the count of events, then for each event its id
/// (empty: assign one), `1` if private, its topics joined by newlines (a topic name holds no
/// control character) and its frame without the `id:` line. Answers the epoch, then each
/// event's sequence number and id; or the error `DUPLICATE <index>`.
pub const PUBLISH: &str = r#"
local channel, keep, count = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 0, count - 1 do
  local id = ARGV[4 + i * 4]
  if id ~= '' and redis.call('HEXISTS', KEYS[3], id) == 1 then
    return redis.error_reply('DUPLICATE ' .. i)
  end
end
local epoch = redis.call('GET', KEYS[5])
if not epoch then
  local now = redis.call('TIME')
  epoch = now[1] .. string.format('%06d', tonumber(now[2]))
  redis.call('SET', KEYS[5], epoch)
end
local answer = {epoch}
for i = 0, count - 1 do
  local id = ARGV[4 + i * 4]
  if id == '' then
    local now = redis.call('TIME')
    local next = tonumber(now[1]) * 1000000 + tonumber(now[2])
    local last = tonumber(redis.call('GET', KEYS[2]) or '0')
    if next <= last then next = last + 1 end
    while redis.call('HEXISTS', KEYS[3], string.format('%d', next)) == 1 do next = next + 1 end
    id = string.format('%d', next)
    redis.call('SET', KEYS[2], id)
  end
  local topics = {}
  for name in string.gmatch(ARGV[6 + i * 4], '[^\n]+') do topics[#topics + 1] = name end
  local seq = redis.call('INCR', KEYS[1])
  local message = cjson.encode({s = seq, e = epoch, i = id, p = ARGV[5 + i * 4] == '1',
                                t = topics, b = ARGV[7 + i * 4]})
  redis.call('XADD', KEYS[4], string.format('%d-1', seq), 'i', id, 'm', message)
  redis.call('HSET', KEYS[3], id, seq)
  while redis.call('XLEN', KEYS[4]) > keep do
    local oldest = redis.call('XRANGE', KEYS[4], '-', '+', 'COUNT', 1)[1]
    redis.call('HDEL', KEYS[3], oldest[2][2])
    redis.call('XDEL', KEYS[4], oldest[1])
  end
  redis.call('PUBLISH', channel, message)
  answer[#answer + 1] = string.format('%d', seq)
  answer[#answer + 1] = id
end
return answer
"#;
