//! Live view of a running strategy: a progress bar with the counts so far. It polls the
//! recorder's atomic counters on a timer, so the request path never waits on drawing.
//!
//! Reads only the strategy's live counters; writes nothing a result depends on.

use crate::strategy::Dispatcher;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::task::JoinHandle;

const REFRESH: Duration = Duration::from_millis(100);

pub struct Monitor {
    bar: ProgressBar,
    task: JoinHandle<()>,
    label: String,
    quiet: bool,
}

impl Monitor {
    /// Starts drawing on stderr (nothing when it is not a terminal, or when `quiet`).
    pub fn start(label: &str, dispatcher: Dispatcher, quiet: bool) -> Monitor {
        let target = if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let bar = ProgressBar::with_draw_target(Some(dispatcher.len() as u64), target);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>14} [{bar:24}] {pos}/{len} {elapsed:>3} {wide_msg}",
            )
            .expect("template is valid")
            .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        let view = bar.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(REFRESH);
            loop {
                tick.tick().await;
                let live = dispatcher.recorder().live();
                view.set_position(live.finished());
                view.set_message(format!(
                    "in flight {} ok {} 429 {} other {}",
                    live.in_flight.load(Ordering::Relaxed),
                    live.ok.load(Ordering::Relaxed),
                    live.rate_limited.load(Ordering::Relaxed),
                    live.failed.load(Ordering::Relaxed),
                ));
            }
        });
        Monitor {
            bar,
            task,
            label: label.to_string(),
            quiet,
        }
    }

    /// Stops the view, leaving the final line on screen (a plain line when stderr is not
    /// a terminal, so logs still show each strategy's end).
    pub fn finish(self, summary: String) {
        self.task.abort();
        if self.bar.is_hidden() && !self.quiet {
            eprintln!("{}: {summary}", self.label);
        }
        self.bar.finish_with_message(summary);
    }
}
