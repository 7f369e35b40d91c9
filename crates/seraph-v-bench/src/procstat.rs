//! CPU time a process used, from /proc: for checking that a halted guest
//! leaves its VMM idle.

use std::path::Path;

/// Nanoseconds on a CPU from a `/proc/<pid>/task/<tid>/schedstat` text
/// (its first field).
pub fn parse_schedstat(text: &str) -> Option<u64> {
    text.split_whitespace().next()?.parse().ok()
}

/// `utime + stime` in clock ticks from a `/proc/<pid>/stat` text (fields
/// 14 and 15, counted after the parenthesised command name, which may
/// itself hold spaces and parentheses).
pub fn parse_stat_ticks(text: &str) -> Option<u64> {
    let after = text.get(text.rfind(')')? + 1..)?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After ")": state is field 3, so utime (14) is index 11, stime (15) index 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    utime.checked_add(stime)
}

/// Total CPU time of every thread of `pid`, in nanoseconds: the sum of
/// its tasks' schedstat run times (ns resolution), or, without schedstat,
/// `utime + stime` from `/proc/<pid>/stat` (tick resolution). `None` if the
/// process is gone.
pub fn cpu_time_ns(pid: u32) -> Option<u64> {
    let tasks = Path::new("/proc").join(pid.to_string()).join("task");
    if let Ok(entries) = std::fs::read_dir(&tasks) {
        let mut total = 0u64;
        let mut any = false;
        for entry in entries.flatten() {
            let path = entry.path().join("schedstat");
            if let Some(ns) = std::fs::read_to_string(&path)
                .ok()
                .as_deref()
                .and_then(parse_schedstat)
            {
                total = total.saturating_add(ns);
                any = true;
            }
        }
        if any {
            return Some(total);
        }
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let ticks = parse_stat_ticks(&stat)?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = u64::try_from(hz).ok().filter(|&h| h > 0).unwrap_or(100);
    ticks.checked_mul(1_000_000_000 / hz)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_schedstat_and_stat() {
        assert_eq!(parse_schedstat("123456 789 10\n"), Some(123456));
        assert_eq!(parse_schedstat(""), None);
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 7 5 0 0 20 0 1 0 100 0 0\n";
        assert_eq!(parse_stat_ticks(stat), Some(12));
        assert_eq!(parse_stat_ticks("42 (x) S 1"), None);
    }

    #[test]
    fn a_busy_process_uses_cpu_time_and_a_gone_one_has_none() {
        let own = cpu_time_ns(std::process::id());
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let later = cpu_time_ns(std::process::id());
        assert!(own.is_some() && later >= own, "{own:?} {later:?}");
        assert_eq!(cpu_time_ns(u32::MAX), None);
    }
}
