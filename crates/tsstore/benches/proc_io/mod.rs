//! What this process made the kernel write to storage, for the benches
//! that measure write amplification.

/// `write_bytes` of `/proc/self/io` (0 where there is none).
pub fn write_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("write_bytes:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}
