//! What the report says about the machine it ran on.

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// CPU count, model, kernel, nested or bare-metal KVM, time of the run.
pub fn machine_description() -> Vec<(String, String)> {
    let nproc = std::thread::available_parallelism()
        .map(|n| n.get().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into());
    let nested = std::fs::read_to_string("/proc/cpuinfo")
        .map(|t| {
            t.lines()
                .any(|l| l.starts_with("flags") && l.contains(" hypervisor"))
        })
        .unwrap_or(false);
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs().to_string())
        .unwrap_or_default();
    vec![
        ("nproc".into(), nproc),
        ("cpu".into(), cpu_model()),
        ("kernel".into(), kernel),
        (
            "kvm".into(),
            if nested {
                "nested (this host is itself a VM: CPU flag `hypervisor`)".into()
            } else {
                "bare metal".into()
            },
        ),
        ("unix_time".into(), unix),
    ]
}
