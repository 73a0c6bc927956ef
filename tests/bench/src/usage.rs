//! CPU time and memory of this process or another one, as the kernel counts them.

use std::time::Duration;

fn rusage() -> libc::rusage {
    // SAFETY: getrusage only writes the struct we hand it.
    unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    }
}

/// User + system CPU time of this whole process (every thread, the plugin's runtime included).
pub fn self_cpu() -> Duration {
    let usage = rusage();
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Context switches of this whole process so far, voluntary and not: each is a thread that
/// went to sleep (waiting for work or a lock) or was preempted.
pub fn self_switches() -> u64 {
    let usage = rusage();
    (usage.ru_nvcsw + usage.ru_nivcsw) as u64
}

/// User + system CPU time of process `pid` (`/proc/<pid>/stat`, clock ticks).
pub fn process_cpu(pid: u32) -> std::io::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may contain spaces; fields after its closing parenthesis
    // start at field 3, so utime (14) and stime (15) are the 12th and 13th from there.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let total = ticks(11) + ticks(12);
    Ok(Duration::from_micros(total * 1_000_000 / hz))
}

/// Resident memory of a process, from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Memory {
    /// `VmRSS`: resident now, in KiB.
    pub rss_kib: u64,
    /// `VmHWM`: the peak resident size, in KiB.
    pub peak_kib: u64,
}

/// [`Memory`] of `pid`; `"self"` works too.
pub fn memory(pid: &str) -> std::io::Result<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    Ok(Memory {
        rss_kib: field("VmRSS:"),
        peak_kib: field("VmHWM:"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cpu_and_memory_are_readable() {
        let spin = std::time::Instant::now();
        while spin.elapsed() < Duration::from_millis(30) {}
        assert!(self_cpu() > Duration::ZERO);
        let from_proc = process_cpu(std::process::id()).unwrap();
        assert!(from_proc <= self_cpu() + Duration::from_millis(20));
        let memory = memory("self").unwrap();
        assert!(memory.rss_kib > 0 && memory.peak_kib >= memory.rss_kib);
    }
}
