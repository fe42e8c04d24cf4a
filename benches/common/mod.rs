//! The machine line every criterion bench prints before its results: the
//! CPU as the operating system names it, and what normkit picked on it.

use normkit::dispatch;
use normkit::simd::prefetch;

/// The first processor's `model name` from /proc/cpuinfo with its `cpu
/// family` and `model` numbers (as `normkit.compare.cpu_model()` gives
/// them in Python; a virtual machine may report a generic name such as
/// "AMD EPYC"), or aarch64's implementer and part; then the logical CPUs.
fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    // The first processor's block ends at its first blank line.
    let first = info.split("\n\n").next().unwrap_or("");
    let field = |key: &str| first.lines().find_map(|line| line.split_once(':').filter(|(k, _)| k.trim() == key).map(|(_, v)| v.trim().to_string()));
    let name = match (field("model name"), field("CPU implementer"), field("CPU part")) {
        (Some(name), ..) => match (field("cpu family"), field("model")) {
            (Some(family), Some(model)) => format!("{name} (family {family}, model {model})"),
            _ => name,
        },
        (None, Some(implementer), Some(part)) => format!("CPU implementer {implementer}, part {part}"),
        _ => "unknown CPU".to_string(),
    };
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    format!("{name}, {cpus} logical CPUs")
}

/// Prints the machine line to stderr (criterion's results go to stdout).
pub fn print_machine() {
    // The probe (the first `detected`) also sets the prefetch switch.
    let isa = dispatch::detected();
    let prefetch = if prefetch::enabled() { "on" } else { "off" };
    eprintln!("CPU: {}; normkit detected {isa}, software prefetches {prefetch}", cpu_model());
}

/// `criterion_main!` that prints the machine line first: the `main` of
/// every bench.
macro_rules! criterion_main_with_machine {
    ($($group:path),+ $(,)?) => {
        fn main() {
            common::print_machine();
            $($group();)+
            criterion::Criterion::default().configure_from_args().final_summary();
        }
    };
}
pub(crate) use criterion_main_with_machine;
