//! Measurement 10: what the web display costs a guest that redraws the
//! whole screen (issue #11). Not measured until `--display web` is wired
//! into the seraph-v CLI; the report says which of the two holds.

use crate::bench::{Bench, Paths, seraph_v_has_flag};

impl Bench {
    /// Records why the display row is absent.
    pub fn display(&mut self, paths: &Paths) {
        let reason = if seraph_v_has_flag(paths, "--display") {
            "seraph-v has --display now, but the bench has no redrawing guest and WebSocket viewer for it yet"
        } else {
            "`--display web` is not wired into the seraph-v CLI yet (no --display in seraph-v --help)"
        };
        self.skip(format!("10 display: not measured: {reason}"));
    }
}
