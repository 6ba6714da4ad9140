//! Where publishes go: the embedded broker when a `busbar::embedded::App` runs in this
//! process, else the sidecar (the one installed, or the environment's).

use std::sync::{Arc, RwLock};

use crate::error::{PublishError, PublishErrorKind};
use crate::sidecar::{Client, Sidecar};
use crate::topic::MessageId;

/// A message on its way.
pub(crate) struct Published {
    pub(crate) topic: &'static str,
    pub(crate) body: Vec<u8>,
    /// Read by the embedded broker only: the sidecar reads the attributes from the body.
    #[cfg_attr(
        not(feature = "embedded"),
        expect(dead_code, reason = "the sidecar reads the attributes from the body")
    )]
    pub(crate) attributes: Vec<(&'static str, String)>,
}

#[derive(Clone)]
enum Transport {
    Sidecar(Arc<Client>),
    #[cfg(feature = "embedded")]
    Embedded(busbar_runtime::EmbeddedBroker),
}

static CURRENT: RwLock<Option<Transport>> = RwLock::new(None);

fn current() -> Option<Transport> {
    CURRENT.read().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Publishes go to `sidecar` (unless an embedded app runs).
pub(crate) fn install_sidecar(sidecar: Sidecar) {
    let mut slot = CURRENT.write().unwrap_or_else(|p| p.into_inner());
    #[cfg(feature = "embedded")]
    if matches!(&*slot, Some(Transport::Embedded(_))) {
        return;
    }
    *slot = Some(Transport::Sidecar(Arc::new(Client::new(sidecar))));
}

/// Publishes go to `broker` from now on; `false` when another embedded app already runs.
#[cfg(feature = "embedded")]
pub(crate) fn install_embedded(broker: busbar_runtime::EmbeddedBroker) -> bool {
    let mut slot = CURRENT.write().unwrap_or_else(|p| p.into_inner());
    if matches!(&*slot, Some(Transport::Embedded(_))) {
        return false;
    }
    *slot = Some(Transport::Embedded(broker));
    true
}

/// The embedded app stopped: publishes go to the sidecar again.
#[cfg(feature = "embedded")]
pub(crate) fn uninstall_embedded() {
    let mut slot = CURRENT.write().unwrap_or_else(|p| p.into_inner());
    if matches!(&*slot, Some(Transport::Embedded(_))) {
        *slot = None;
    }
}

pub(crate) async fn publish(message: Published) -> Result<MessageId, PublishError> {
    let transport = match current() {
        Some(t) => t,
        None => {
            let sidecar = Sidecar::from_env().map_err(|e| {
                let text = format!("cannot publish to `{}`: {e}", message.topic);
                PublishError::new(PublishErrorKind::SidecarUnavailable, message.topic, text)
                    .with_source(e)
            })?;
            let client = Transport::Sidecar(Arc::new(Client::new(sidecar)));
            // Another task may have installed one meanwhile: keep that.
            let mut slot = CURRENT.write().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert(client).clone()
        }
    };
    match transport {
        Transport::Sidecar(client) => client.publish(message.topic, message.body).await,
        #[cfg(feature = "embedded")]
        Transport::Embedded(broker) => crate::embedded::publish(&broker, message).await,
    }
}
