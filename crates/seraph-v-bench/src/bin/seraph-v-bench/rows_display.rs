//! Measurement 10: what the live web display costs a guest that redraws
//! the whole screen (issue #11): the display_redraw guest's own TSC time
//! for the same frames with `--display web` and a connected viewer (a
//! WebSocket client in the bench reading every update) against the same
//! run without a display; exits from `--stats` for both.

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use seraph_v_bench::lines::LineChild;
use seraph_v_bench::spawn::Invocation;
use seraph_v_bench::summary::ratio;
use seraph_v_bench::ws::Viewer;
use seraph_v_bench::{BenchError, Goal};

use crate::bench::{Bench, Paths};

const GROUP: &str = "10 display: full redraw";

/// One run: guest cycles per frame, exits, updates the viewer got.
struct RedrawRun {
    cycles_per_frame: f64,
    exits: Option<f64>,
    updates: Option<u64>,
}

/// `exits: N total` from seraph-v's `--stats` text.
pub fn stats_exits(stats: &str) -> Option<f64> {
    stats
        .lines()
        .find_map(|l| l.strip_prefix("exits: "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// `display-redraw: <n> frames <cycles> cycles` -> (frames, cycles).
pub fn redraw_line(line: &str) -> Option<(u64, u64)> {
    let words: Vec<&str> = line.strip_prefix("display-redraw: ")?.split(' ').collect();
    match words.as_slice() {
        [n, "frames", c, "cycles"] => Some((n.parse().ok()?, c.parse().ok()?)),
        _ => None,
    }
}

fn free_tcp_port() -> Result<u16, BenchError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(BenchError::io("127.0.0.1:0"))?;
    Ok(listener
        .local_addr()
        .map_err(BenchError::io("127.0.0.1:0"))?
        .port())
}

fn redraw_once(paths: &Paths, frames: u64, display: bool) -> Result<RedrawRun, BenchError> {
    let limit = Duration::from_secs(300);
    let port = free_tcp_port()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut args: Vec<std::ffi::OsString> = vec![
        paths.display_redraw.as_os_str().to_owned(),
        "--no-screenshot".into(),
        "--stats".into(),
        "--timeout".into(),
        "600s".into(),
    ];
    if display {
        args.push("--display".into());
        args.push(format!("web,addr={addr}").into());
    }
    let inv = Invocation::new(&paths.seraph_v, args);
    let log = paths.bench_dir.join("display_stats.txt");
    let mut child = LineChild::spawn_logged(&inv, true, Some(&log))?;
    child.wait_line(limit, |l| l == "display-redraw: ready")?;
    let viewer = if display {
        let viewer = Viewer::connect(addr, Duration::from_secs(30))?;
        // The first full frame: the viewer is live before the loop starts.
        if !viewer.wait_updates(1, Duration::from_secs(30)) {
            return Err(BenchError::Setup(
                "display viewer: no first frame within 30 s".into(),
            ));
        }
        Some(viewer)
    } else {
        None
    };
    let before = viewer
        .as_ref()
        .map(|v| v.counts.updates.load(std::sync::atomic::Ordering::Relaxed));
    child.send(format!("{frames}\n").as_bytes())?;
    let done = child.wait_line(limit, |l| {
        l.starts_with("display-redraw: ") && l != "display-redraw: ready"
    })?;
    let after = viewer
        .as_ref()
        .map(|v| v.counts.updates.load(std::sync::atomic::Ordering::Relaxed));
    let (code, _) = child.wait_exit(limit)?;
    drop(viewer);
    let parsed = redraw_line(&done.text);
    let Some((n, cycles)) = parsed.filter(|(n, _)| *n == frames && code == Some(0)) else {
        return Err(BenchError::Child {
            program: paths.seraph_v.clone(),
            detail: format!(
                "display redraw: expected {frames} frames and exit 0, got {:?} ({code:?}); output:\n{}",
                done.text,
                child.transcript()
            ),
        });
    };
    let stats = std::fs::read_to_string(&log).unwrap_or_default();
    Ok(RedrawRun {
        cycles_per_frame: cycles as f64 / n.max(1) as f64,
        exits: stats_exits(&stats),
        updates: before.zip(after).map(|(b, a)| a.saturating_sub(b)),
    })
}

impl Bench {
    /// Redraws with the display off and on (a viewer connected), interleaved.
    pub fn display(&mut self, paths: &Paths) -> Result<(), BenchError> {
        // A full 1024x768 redraw is 393216 stores: about 0.5 s of guest
        // time on this nested machine, far less on hardware.
        let frames = if self.quick { 2 } else { 4 };
        let reps = self.reps(3, 1);
        eprintln!("seraph-v-bench: display: {reps} x {frames} full redraws, display off and on");
        let mut off = Vec::new();
        let mut on = Vec::new();
        for rep in 0..reps {
            for display in if rep % 2 == 0 {
                [false, true]
            } else {
                [true, false]
            } {
                let run = redraw_once(paths, frames, display)?;
                if display {
                    on.push(run);
                } else {
                    off.push(run);
                }
            }
        }
        let hz = seraph_v_bench::disk::tsc_hz(Duration::from_millis(200));
        let (unit, scale): (&'static str, f64) = match hz {
            Some(hz) => ("ms/frame", 1e3 / hz),
            None => ("cycles/frame", 1.0),
        };
        let per_frame = |runs: &[RedrawRun]| -> Vec<f64> {
            runs.iter().map(|r| r.cycles_per_frame * scale).collect()
        };
        let off_s = self.row(GROUP, "display off", unit, &per_frame(&off));
        let on_s = self.row(GROUP, "--display web + 1 viewer", unit, &per_frame(&on));
        let paired: Vec<f64> = on
            .iter()
            .zip(&off)
            .filter_map(|(a, b)| ratio(a.cycles_per_frame, b.cycles_per_frame))
            .collect();
        let p = self.row(GROUP, "ratio on/off, paired", "x", &paired);
        let exits =
            |runs: &[RedrawRun]| -> Vec<f64> { runs.iter().filter_map(|r| r.exits).collect() };
        self.row(
            "10 display: exits/run",
            "display off",
            "exits",
            &exits(&off),
        );
        self.row(
            "10 display: exits/run",
            "--display web + 1 viewer",
            "exits",
            &exits(&on),
        );
        let updates: Vec<f64> = on
            .iter()
            .filter_map(|r| r.updates)
            .map(|u| u as f64)
            .collect();
        self.row(
            "10 display: updates",
            "received by the viewer",
            "updates",
            &updates,
        );
        self.check(
            "display: guest time per redraw, on / off (paired)",
            p.map(|p| p.median),
            Goal::AtMost(1.05),
        );
        let _ = (off_s, on_s);
        self.report.notes.push(format!(
            "display: the display_redraw guest redraws the whole 1024x768 screen {frames} times per run \
             and times the loop with its TSC; `--display web` with one viewer connected (a WebSocket \
             client in the bench reading every update; the display sends at most 30 updates/s) \
             against no display; exits (from --stats) and updates are per run; the guest waits for its \
             start byte in HLT, so its exits are the redraw's and the display's"
        ));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stats_and_the_guest_line() {
        let stats = "exits: 58487 total\n  io-in 58413\ntime: 2.5s total\n";
        assert_eq!(stats_exits(stats), Some(58487.0));
        assert_eq!(stats_exits("nothing"), None);
        assert_eq!(
            redraw_line("display-redraw: 4 frames 5322109816 cycles"),
            Some((4, 5_322_109_816))
        );
        assert_eq!(redraw_line("display-redraw: ready"), None);
    }
}
