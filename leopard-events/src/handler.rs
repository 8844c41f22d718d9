//! Handlers: the [`EventHandler`] trait, registration with `inventory` ([`crate::register_handler!`])
//! and the [`HandlerRegistry`] built from it at start-up (sorted by name, duplicates refused).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use leopard_tenancy::{TenantContext, TenantTx};

use crate::{Event, EventsError};

/// Why a handler failed; kept on the event (as text) and retried with backoff.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HandlerError(pub String);

impl HandlerError {
    /// A failure with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl From<sqlx::Error> for HandlerError {
    fn from(err: sqlx::Error) -> Self {
        Self(err.to_string())
    }
}

impl From<leopard_tenancy::TenancyError> for HandlerError {
    fn from(err: leopard_tenancy::TenancyError) -> Self {
        Self(err.to_string())
    }
}

/// What a handler gets besides the event: its tenant. A transactional handler
/// ([`EventHandler::transactional`]) also gets the open tenant transaction in which its success
/// will be recorded ([`HandlerContext::tx`]); others may open their own ([`TenantContext::begin`]).
pub struct HandlerContext<'a> {
    tenant: &'a TenantContext,
    tx: Option<&'a mut TenantTx>,
}

impl<'a> HandlerContext<'a> {
    pub(crate) fn new(tenant: &'a TenantContext, tx: Option<&'a mut TenantTx>) -> Self {
        Self { tenant, tx }
    }

    /// The event's tenant.
    pub fn tenant(&self) -> &TenantContext {
        self.tenant
    }

    /// The tenant transaction that will also record this handler's success (transactional
    /// handlers only; `None` for the others).
    pub fn tx(&mut self) -> Option<&mut TenantTx> {
        self.tx.as_deref_mut()
    }
}

impl std::fmt::Debug for HandlerContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandlerContext")
            .field("tenant", self.tenant)
            .field("transactional", &self.tx.is_some())
            .finish()
    }
}

/// Reacts to events of some types.
#[async_trait]
pub trait EventHandler: Send + Sync + 'static {
    /// A unique, stable name (`timeline.client_created`); results are recorded under it.
    fn name(&self) -> &'static str;

    /// The event types handled (`Client.CREATE`); `*` handles every type.
    fn event_types(&self) -> &'static [&'static str];

    /// Whether the handler runs inside a tenant transaction that also records its success, so
    /// it takes effect exactly once (default). Non-transactional handlers run at least once.
    fn transactional(&self) -> bool {
        true
    }

    /// Handles one event. An error rolls back the handler's transaction and schedules a retry
    /// of this handler only.
    async fn handle(&self, ctx: &mut HandlerContext<'_>, event: &Event)
        -> Result<(), HandlerError>;
}

/// One `inventory` submission: a handler constructor and where it came from.
#[derive(Debug)]
pub struct HandlerRegistration {
    /// Builds the handler.
    pub make: fn() -> Box<dyn EventHandler>,
    /// The crate that registered it.
    pub crate_name: &'static str,
}

inventory::collect!(HandlerRegistration);

/// Registers a handler type (with a `Default` impl) for every [`HandlerRegistry::from_inventory`]
/// of the program:
///
/// ```ignore
/// #[derive(Default)]
/// struct AuditLog;
/// #[async_trait::async_trait]
/// impl leopard_events::EventHandler for AuditLog { /* … */ }
/// leopard_events::register_handler!(AuditLog);
/// ```
///
/// Handlers in a crate the binary never references may be dropped by the linker: `use` the
/// crate (e.g. `use my_handlers as _;`).
#[macro_export]
macro_rules! register_handler {
    ($ty:ty) => {
        $crate::__private::inventory::submit! {
            $crate::HandlerRegistration {
                make: || ::std::boxed::Box::new(<$ty as ::std::default::Default>::default()),
                crate_name: ::std::env!("CARGO_PKG_NAME"),
            }
        }
    };
}

/// A handler as listed by [`HandlerRegistry::describe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerInfo {
    /// Its name.
    pub name: &'static str,
    /// The event types it handles.
    pub event_types: &'static [&'static str],
    /// Whether it runs exactly once (transactionally).
    pub transactional: bool,
    /// The crate that registered it.
    pub crate_name: &'static str,
}

/// The handlers of a program, sorted by name, at most one per name.
#[derive(Clone, Default)]
pub struct HandlerRegistry {
    handlers: Vec<(Arc<dyn EventHandler>, &'static str)>,
}

impl std::fmt::Debug for HandlerRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.handlers.iter().map(|(h, _)| h.name()))
            .finish()
    }
}

impl HandlerRegistry {
    /// Every handler registered with [`crate::register_handler!`] in the program.
    pub fn from_inventory() -> Result<Self, EventsError> {
        Self::from_handlers(
            inventory::iter::<HandlerRegistration>
                .into_iter()
                .map(|r| ((r.make)(), r.crate_name)),
        )
    }

    /// A registry of explicitly given handlers (tests, exotic targets); refuses duplicate names.
    pub fn from_handlers(
        handlers: impl IntoIterator<Item = (Box<dyn EventHandler>, &'static str)>,
    ) -> Result<Self, EventsError> {
        let mut by_name = BTreeMap::new();
        for (handler, crate_name) in handlers {
            let name = valid_name(handler.as_ref())?;
            if by_name
                .insert(name, (Arc::<dyn EventHandler>::from(handler), crate_name))
                .is_some()
            {
                return Err(EventsError::DuplicateHandler(name.to_owned()));
            }
        }
        Ok(Self {
            handlers: by_name.into_values().collect(),
        })
    }

    /// The same registry plus `handler` (one that cannot be built by [`crate::register_handler!`],
    /// e.g. because it needs a connection), kept in name order; refuses a duplicate name.
    pub fn with(
        mut self,
        handler: Box<dyn EventHandler>,
        crate_name: &'static str,
    ) -> Result<Self, EventsError> {
        let name = valid_name(handler.as_ref())?;
        match self.handlers.binary_search_by(|(h, _)| h.name().cmp(name)) {
            Ok(_) => Err(EventsError::DuplicateHandler(name.to_owned())),
            Err(at) => {
                self.handlers
                    .insert(at, (Arc::<dyn EventHandler>::from(handler), crate_name));
                Ok(self)
            }
        }
    }

    /// How many handlers there are.
    pub fn len(&self) -> usize {
        self.handlers.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.handlers.is_empty()
    }

    /// The handlers of `event_type`, by name.
    pub fn for_type<'a>(
        &'a self,
        event_type: &'a str,
    ) -> impl Iterator<Item = &'a Arc<dyn EventHandler>> + 'a {
        self.handlers.iter().map(|(h, _)| h).filter(move |h| {
            h.event_types()
                .iter()
                .any(|t| *t == "*" || *t == event_type)
        })
    }

    /// Every handler, by name.
    pub fn describe(&self) -> Vec<HandlerInfo> {
        self.handlers
            .iter()
            .map(|(h, crate_name)| HandlerInfo {
                name: h.name(),
                event_types: h.event_types(),
                transactional: h.transactional(),
                crate_name,
            })
            .collect()
    }
}

/// The handler's name if it is acceptable (1 to 200 bytes).
fn valid_name(handler: &dyn EventHandler) -> Result<&'static str, EventsError> {
    let name = handler.name();
    if name.is_empty() || name.len() > 200 {
        return Err(EventsError::Invalid {
            what: "handler name",
            value: name.to_owned(),
        });
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Named(&'static str);

    #[async_trait]
    impl EventHandler for Named {
        fn name(&self) -> &'static str {
            self.0
        }
        fn event_types(&self) -> &'static [&'static str] {
            &["*"]
        }
        async fn handle(
            &self,
            _ctx: &mut HandlerContext<'_>,
            _event: &Event,
        ) -> Result<(), crate::HandlerError> {
            Ok(())
        }
    }

    #[test]
    fn with_keeps_the_registry_sorted_and_refuses_a_duplicate_or_empty_name() {
        let registry = HandlerRegistry::from_handlers([
            (Box::new(Named("a")) as Box<dyn EventHandler>, "t"),
            (Box::new(Named("c")), "t"),
        ])
        .and_then(|r| r.with(Box::new(Named("b")), "u"))
        .expect("registry");
        let names: Vec<_> = registry.describe().iter().map(|h| h.name).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(registry.describe()[1].crate_name, "u");
        assert!(matches!(
            registry.clone().with(Box::new(Named("c")), "u"),
            Err(EventsError::DuplicateHandler(name)) if name == "c"
        ));
        assert!(matches!(
            registry.with(Box::new(Named("")), "u"),
            Err(EventsError::Invalid { .. })
        ));
    }
}
