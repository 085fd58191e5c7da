//! Resources under a resource group other than registries: user-assigned managed identities
//! (`Microsoft.ManagedIdentity/userAssignedIdentities`) and the hosting resources that carry
//! identities (container groups, ML workspaces, web sites).

use axum::response::Response;
use wharf_arm::ArmError;

use super::ArmCtx;

pub async fn handle(ctx: &ArmCtx, group: &str, namespace: &str, rest: &[String]) -> Result<Response, ArmError> {
    super::groups::require(&ctx.state, group).await?;
    let path = format!("{namespace}/{}", rest.join("/"));
    Err(ArmError::new(400, "NoRegisteredProviderFound", format!("No registered resource provider found for '{path}'.")))
}
