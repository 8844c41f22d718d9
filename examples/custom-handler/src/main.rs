//! Lists the handlers this program registers: `cargo run -p custom-handler`.
//!
//! `HandlerRegistry::from_inventory()` sees every handler registered in a crate the binary
//! links. Here the crate is referenced explicitly, so the linker keeps its registration.

use custom_handler as _;
use leopard_events::HandlerRegistry;

fn main() -> anyhow::Result<()> {
    // Refuses duplicate names, like a server's start-up.
    let registry = HandlerRegistry::from_inventory()?;
    for h in registry.describe() {
        println!(
            "{} (crate {}, types {}, {})",
            h.name,
            h.crate_name,
            h.event_types.join(", "),
            if h.transactional {
                "transactional"
            } else {
                "at least once"
            }
        );
    }
    Ok(())
}
