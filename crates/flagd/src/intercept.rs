//! The interceptor in front of every gRPC service: it finds the caller (a principal, or
//! anyone on an open service) and puts it on the request, for the access checks and the
//! history's actor.

use std::sync::Arc;

use tonic::{Request, Status};

use crate::auth::{Access, Service};

/// Authenticates requests to `service`.
#[derive(Clone, Debug)]
pub(crate) struct Authenticate {
    pub(crate) access: Arc<Access>,
    pub(crate) service: Service,
}

impl tonic::service::Interceptor for Authenticate {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let caller = self.access.authenticate(request.metadata(), self.service)?;
        request.extensions_mut().insert(caller);
        Ok(request)
    }
}
