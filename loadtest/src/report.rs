//! The plain table printed at the end of a run, and the number formats it uses.
//!
//! [`Comparison`] builds the table of a scenario that can run beside the floor: one value column,
//! or the server's, the floor's and their ratio.

use std::fmt::Write;

/// Rows of a figure name and one value per column.
#[derive(Debug, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column names (the first names the figure column).
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row(&mut self, name: &str, values: Vec<String>) {
        let mut row = vec![name.to_owned()];
        row.extend(values);
        self.rows.push(row);
    }

    /// Adds a row for each count that should be zero (see [`alarm`]).
    pub fn alarms(&mut self, counts: &[(&str, u64)]) {
        for &(name, count) in counts {
            self.row(name, vec![alarm(count)]);
        }
    }

    /// Adds the rows of server and client CPU time: per `unit` (`delivery`, `event`), in
    /// microseconds, and in all, in seconds.
    pub fn cpu(&mut self, unit: &str, per_unit_us: [f64; 2], seconds: [f64; 2]) {
        let [server_us, client_us] = per_unit_us;
        self.row(&format!("server CPU per {unit}"), vec![us(server_us)]);
        self.row(&format!("client CPU per {unit}"), vec![us(client_us)]);
        let [server, client] = seconds;
        let both = format!("{server:.2} s / {client:.2} s");
        self.row("server / client CPU", vec![both]);
    }

    /// Adds a section line.
    pub fn section(&mut self, name: &str) {
        self.rows.push(vec![format!("-- {name}")]);
    }

    /// Renders with aligned columns: the first left-aligned, the others right-aligned.
    pub fn render(&self) -> String {
        let columns = self.header.len();
        let mut widths = vec![0; columns];
        for row in self
            .rows
            .iter()
            .filter(|r| r.len() > 1)
            .chain([&self.header])
        {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in [&self.header].into_iter().chain(&self.rows) {
            if row.len() == 1 && row != &self.header {
                let _ = writeln!(out, "{}", row[0]);
                continue;
            }
            let mut line = String::new();
            for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
                if i == 0 {
                    let _ = write!(line, "{cell:<width$}");
                } else {
                    let _ = write!(line, "  {cell:>width$}");
                }
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
        out
    }
}

/// A report that names the server it measured.
pub trait Named {
    /// Which server.
    fn server(&self) -> &str;
}

/// A table of one report, or of a report beside its floor run with the ratio of the two.
pub struct Comparison<'a, R> {
    table: Table,
    report: &'a R,
    floor: Option<&'a R>,
}

impl<'a, R: Named> Comparison<'a, R> {
    /// A table headed by the scenario's name and the server (and floor) names.
    pub fn new(scenario: &str, report: &'a R, floor: Option<&'a R>) -> Comparison<'a, R> {
        let mut header = vec![scenario, report.server()];
        if let Some(floor) = floor {
            header.extend([floor.server(), "ratio"]);
        }
        Comparison {
            table: Table::new(&header),
            report,
            floor,
        }
    }

    /// Adds a row of the figure `value` reads, written by `format`, and the ratio beside a floor.
    pub fn row(&mut self, name: &str, value: impl Fn(&R) -> f64, format: impl Fn(f64) -> String) {
        let mut values = vec![format(value(self.report))];
        if let Some(floor) = self.floor {
            values.push(format(value(floor)));
            values.push(ratio(value(self.report), value(floor)));
        }
        self.table.row(name, values);
    }

    /// Adds a row of a count that should be zero (see [`alarm`]), with no ratio.
    pub fn alarm(&mut self, name: &str, count: impl Fn(&R) -> u64) {
        let mut values = vec![alarm(count(self.report))];
        if let Some(floor) = self.floor {
            values.extend([alarm(count(floor)), String::new()]);
        }
        self.table.row(name, values);
    }

    /// Adds a section line.
    pub fn section(&mut self, name: &str) {
        self.table.section(name);
    }

    /// The table built.
    pub fn into_table(self) -> Table {
        self.table
    }
}

/// A count, no decimals.
pub fn count(value: f64) -> String {
    format!("{value:.0}")
}

/// A whole number with thousands separators: `84,123`.
pub fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A rate: a whole number grouped by thousands from 100 a second up (`389,029,477/s`), three
/// significant figures below (`12.5/s`, `0.25/s`).
pub fn per_second(value: f64) -> String {
    let value = value.max(0.0);
    if value >= 99.95 {
        return format!("{}/s", thousands(value.round() as u64));
    }
    if value == 0.0 {
        return "0/s".into();
    }
    let decimals = (2 - value.log10().floor() as i32).clamp(0, 6) as usize;
    let text = format!("{value:.decimals$}");
    format!("{}/s", text.trim_end_matches('0').trim_end_matches('.'))
}

/// Milliseconds with two decimals.
pub fn ms(value: f64) -> String {
    format!("{value:.2} ms")
}

/// A byte count per subscriber, whole bytes.
pub fn bytes_each(value: f64) -> String {
    format!("{value:.0} B")
}

/// A memory size in MiB.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// Microseconds with three decimals.
pub fn us(value: f64) -> String {
    format!("{value:.3} us")
}

/// `a / b` as `1.23x`, or `-` when `b` is not positive.
pub fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}x", a / b)
    } else {
        "-".into()
    }
}

/// A count, with `!!` around it when it should be zero and is not.
pub fn alarm(count: u64) -> String {
    if count == 0 {
        "0".into()
    } else {
        format!("!! {count} !!")
    }
}

#[cfg(test)]
mod tests {
    use super::{alarm, per_second, ratio, thousands, Comparison, Named, Table};

    struct Figures {
        server: &'static str,
        streaming: u64,
        failed: u64,
    }

    impl Named for Figures {
        fn server(&self) -> &str {
            self.server
        }
    }

    #[test]
    fn renders_aligned() {
        let mut table = Table::new(&["figure", "server"]);
        table.section("latency");
        table.row("p50", vec!["1.00 ms".into()]);
        table.row("p99 long", vec!["12.00 ms".into()]);
        assert_eq!(
            table.render(),
            "figure      server\n-- latency\np50        1.00 ms\np99 long  12.00 ms\n"
        );
        assert_eq!(ratio(3.0, 2.0), "1.50x");
        assert_eq!(ratio(3.0, 0.0), "-");
        assert_eq!(alarm(0), "0");
        assert_eq!(alarm(3), "!! 3 !!");
    }

    #[test]
    fn large_numbers_are_grouped_by_thousands() {
        let grouped = [0, 7, 999, 1000, 84_123, 100_000, 389_029_477].map(thousands);
        assert_eq!(
            grouped,
            ["0", "7", "999", "1,000", "84,123", "100,000", "389,029,477"]
        );
        let rates = [389_029_477.098_7, 100.0, 99.96, 12.345, 5.0, 0.25, 0.1, 0.0];
        assert_eq!(
            rates.map(per_second),
            [
                "389,029,477/s",
                "100/s",
                "100/s",
                "12.3/s",
                "5/s",
                "0.25/s",
                "0.1/s",
                "0/s"
            ]
        );
    }

    #[test]
    fn compares_beside_the_floor_or_alone() {
        let server = Figures {
            server: "server",
            streaming: 30,
            failed: 0,
        };
        let floor = Figures {
            server: "floor",
            streaming: 20,
            failed: 2,
        };
        let build = |floor| {
            let mut table = Comparison::new("scenario", &server, floor);
            table.row("streaming", |f| f.streaming as f64, super::count);
            table.alarm("failed", |f| f.failed);
            table.section("note");
            table.into_table().render()
        };
        assert_eq!(
            build(Some(&floor)),
            "scenario   server    floor  ratio\n\
             streaming      30       20  1.50x\n\
             failed          0  !! 2 !!\n\
             -- note\n"
        );
        assert_eq!(
            build(None),
            "scenario   server\nstreaming      30\nfailed          0\n-- note\n"
        );
    }
}
