//! Where publishes go: the broker of the in-process app that runs in this process (embedded,
//! or a cloud backend's), else the sidecar (the one installed, or the environment's).

use std::sync::{Arc, RwLock};

use crate::error::{PublishError, PublishErrorKind};
use crate::sidecar::{Client, Sidecar};
use crate::topic::MessageId;

/// A message on its way.
pub(crate) struct Published {
    pub(crate) topic: &'static str,
    pub(crate) body: Vec<u8>,
    /// Read by an in-process broker only: the sidecar reads the attributes from the body.
    #[cfg_attr(
        not(feature = "in-process"),
        expect(dead_code, reason = "the sidecar reads the attributes from the body")
    )]
    pub(crate) attributes: Vec<(&'static str, String)>,
}

#[derive(Clone)]
enum Transport {
    Sidecar(Arc<Client>),
    /// An in-process app's broker, and the service whose grants its publishes have (`None`:
    /// the embedded app, whose broker has only this binary's topics).
    #[cfg(feature = "in-process")]
    Broker(Arc<dyn busbar_runtime::Broker>, Option<String>),
}

static CURRENT: RwLock<Option<Transport>> = RwLock::new(None);

fn current() -> Option<Transport> {
    CURRENT.read().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Publishes go to `sidecar` (unless an in-process app runs).
pub(crate) fn install_sidecar(sidecar: Sidecar) {
    let mut slot = CURRENT.write().unwrap_or_else(|p| p.into_inner());
    #[cfg(feature = "in-process")]
    if matches!(&*slot, Some(Transport::Broker(..))) {
        return;
    }
    *slot = Some(Transport::Sidecar(Arc::new(Client::new(sidecar))));
}

/// Publishes go to `broker`, as `service`, from now on; `false` when another in-process app
/// already runs.
#[cfg(feature = "in-process")]
pub(crate) fn install_broker(
    broker: Arc<dyn busbar_runtime::Broker>,
    service: Option<String>,
) -> bool {
    let mut slot = CURRENT.write().unwrap_or_else(|p| p.into_inner());
    if matches!(&*slot, Some(Transport::Broker(..))) {
        return false;
    }
    *slot = Some(Transport::Broker(broker, service));
    true
}

/// The in-process app stopped: publishes go to the sidecar again.
#[cfg(feature = "in-process")]
pub(crate) fn uninstall_broker() {
    let mut slot = CURRENT.write().unwrap_or_else(|p| p.into_inner());
    if matches!(&*slot, Some(Transport::Broker(..))) {
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
        #[cfg(feature = "in-process")]
        Transport::Broker(broker, service) => {
            crate::in_process::publish(broker.as_ref(), service.as_deref(), message).await
        }
    }
}
