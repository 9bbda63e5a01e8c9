//! ssecast-loadtest: measures an SSE server's memory per subscriber, fan-out latency, lost
//! events and memory after spikes, from the same machine, over loopback.
//!
//! A run starts its subscribers in a `fleet`: a `client` group of mio threads in this process
//! and, above one process's open-file limit, `worker` processes of the same program driven
//! over JSON lines. Each connection parses its stream with a few bytes of state (`client::sse`,
//! `client::chunked`) and accounts sequence numbers (`client::seq`); latencies go into
//! per-thread histograms (`latency`), overall and by second of sending, that are added up at
//! the end. The `publish`er stamps each event with its stream, sequence and send time. `probe`
//! reads memory and CPU from `/proc`, `sampler` records them over time for the JSON report and
//! the `svg` chart. `head` parses HTTP heads: the answers the clients read and the requests the
//! floor reads. `scenario` holds the runs (`connect`, `single`, `fanout`, `publish`, `pulse`,
//! `hostile`), `cli` their flags and `report` their tables; `floor` is the trivial broadcaster they
//! compare against, and `attack` the misbehaving clients `hostile` sets on the server. `token`
//! makes the subscriber tokens of the `tokens` command and reads them back for `--token-file`.
//! Only loopback targets are accepted (`target`), and every phase has a time bound. A target
//! may be a cluster: one `--url` per node, the subscribers dealt over them in turn
//! (`client::request`), publishes to the first, every node's process measured.
#![forbid(unsafe_code)]

pub mod addr;
pub mod attack;
pub mod cli;
pub mod client;
pub mod error;
pub mod fleet;
pub mod floor;
pub mod head;
pub mod http;
pub mod latency;
pub mod probe;
pub mod publish;
pub mod report;
pub mod sampler;
pub mod scenario;
pub mod svg;
pub mod target;
pub mod token;
pub mod ui;
pub mod worker;
