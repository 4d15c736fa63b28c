//! The machine a benchmark ran on, for the record next to its numbers.

use std::path::Path;
use std::process::Command;

#[derive(Debug, Clone)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory: String,
    pub filesystem: String,
    pub rustc: String,
    pub date: String,
    /// The 1/5/15-minute load averages when described: other work on the machine moves
    /// every number here, so it is recorded with them.
    pub load: String,
}

impl Machine {
    /// Describes this machine; `dir` is where the benchmark wrote, whose filesystem matters.
    pub fn describe(dir: &Path) -> Machine {
        Machine {
            cpu: cpu_model().unwrap_or_else(|| "unknown".into()),
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            memory: memory().unwrap_or_else(|| "unknown".into()),
            filesystem: filesystem(dir).unwrap_or_else(|| "unknown".into()),
            rustc: command_output("rustc", &["--version"]).unwrap_or_else(|| "unknown".into()),
            date: command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
                .unwrap_or_else(|| "unknown".into()),
            load: load_average().unwrap_or_else(|| "unknown".into()),
        }
    }
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program).args(args).output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

fn load_average() -> Option<String> {
    let loadavg = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(
        loadavg
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

fn cpu_model() -> Option<String> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    cpuinfo
        .lines()
        .find(|line| line.starts_with("model name"))
        .and_then(|line| line.split_once(':'))
        .map(|(_, model)| model.trim().to_owned())
}

fn memory() -> Option<String> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = meminfo
        .lines()
        .find(|line| line.starts_with("MemTotal:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(format!("{:.1} GiB", kib as f64 / (1024.0 * 1024.0)))
}

/// The mount that holds `dir`: device, filesystem type, and whether the device rotates.
fn filesystem(dir: &Path) -> Option<String> {
    let dir = dir.canonicalize().ok()?;
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    let (device, mount_point, fs_type) = mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            Some((fields.next()?, fields.next()?, fields.next()?))
        })
        .filter(|(_, mount_point, _)| dir.starts_with(mount_point))
        .max_by_key(|(_, mount_point, _)| mount_point.len())?;
    let block = device.rsplit('/').next().unwrap_or(device);
    let rotational = std::fs::read_to_string(format!("/sys/class/block/{block}/queue/rotational"))
        .ok()
        .map(|value| {
            if value.trim() == "1" {
                ", rotational"
            } else {
                ", non-rotational"
            }
        })
        .unwrap_or("");
    Some(format!(
        "{device} ({fs_type}{rotational}) mounted at {mount_point}"
    ))
}
