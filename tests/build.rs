//! Sets `cfg(services)` when the test command promises every service
//! (`KINESIS_PROCESSOR_REQUIRE_SERVICES=1`): tests that need moto, cargo-lambda or the
//! Python KPL library then run, and fail if what they need is missing. Without it they are
//! ignored, with their reason.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(services)");
    println!("cargo::rerun-if-env-changed=KINESIS_PROCESSOR_REQUIRE_SERVICES");
    if std::env::var_os("KINESIS_PROCESSOR_REQUIRE_SERVICES").is_some_and(|v| v == "1") {
        println!("cargo::rustc-cfg=services");
    }
}
