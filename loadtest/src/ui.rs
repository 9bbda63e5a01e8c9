//! Live progress on stderr (indicatif), off for JSON runs' workers and for tests.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Makes progress bars, or hidden ones.
#[derive(Debug, Clone, Copy)]
pub struct Ui {
    /// Draw bars on stderr (indicatif also hides them when stderr is not a terminal).
    pub progress: bool,
}

impl Ui {
    /// A bar counting to `len`.
    pub fn bar(&self, len: u64, message: &str) -> ProgressBar {
        self.make(
            len,
            "{msg:>14} [{bar:40}] {pos}/{len} {per_sec} eta {eta}",
            message,
        )
    }

    /// A bar counting seconds of a timed phase.
    pub fn timer(&self, seconds: u64, message: &str) -> ProgressBar {
        self.make(seconds, "{msg:>14} [{bar:40}] {pos}/{len} s", message)
    }

    fn make(&self, len: u64, template: &str, message: &str) -> ProgressBar {
        let bar = ProgressBar::new(len);
        if self.progress {
            bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(4));
            bar.enable_steady_tick(Duration::from_millis(250));
        } else {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        bar.set_style(
            ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_message(message.to_owned());
        bar
    }
}
