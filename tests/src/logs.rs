//! Every log line of a test process, captured in memory, for tests that search the broker's
//! and the plugin's logs (for secrets, forged lines, escape codes).

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

/// The log lines captured so far (one global subscriber: the broker logs from whichever runtime
/// thread runs its handlers).
#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl Write for LogCapture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.lock().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogCapture {
    /// Everything logged so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.lock()).into_owned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Installs, once per test process, the subscriber that captures every event `filter` lets
/// through (an `EnvFilter` directive such as `trace` or `host_example=debug`), without colour.
/// Panics if another filter was asked for before in the same process.
pub fn capture_logs(filter: &'static str) -> LogCapture {
    static CAPTURE: OnceLock<(&'static str, LogCapture)> = OnceLock::new();
    let (installed, capture) = CAPTURE.get_or_init(|| {
        let capture = LogCapture::default();
        let writer = capture.clone();
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init()
            .expect("no other subscriber in this test binary");
        (filter, capture)
    });
    assert_eq!(*installed, filter, "one log filter per test binary");
    capture.clone()
}
