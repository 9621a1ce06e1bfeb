//! The `tsstore` server binary. The REST API, ingest and outbound
//! connections arrive with the server issue; for now it only reports its version.

fn main() {
    println!(
        "tsstore {} (server not built yet)",
        env!("CARGO_PKG_VERSION")
    );
}
