//! The management plane's values, shaped as Azure Resource Manager shapes them: resource ids,
//! resource and group names, the registry resource and its properties, the emulated network
//! resources (virtual networks, private endpoints), managed identities and hosting resources,
//! and ARM error bodies.
//!
//! Pure values and rules: no HTTP, no storage. The server turns requests into these values and
//! these values into JSON; the CLI reads the same JSON.
#![forbid(unsafe_code)]

pub mod error;
pub mod id;
pub mod identity;
pub mod network;
pub mod registry;
pub mod source_trigger;
pub mod task;
pub mod timer;

pub use error::ArmError;
pub use id::{ResourceId, validate_registry_name, validate_resource_group_name};

/// ARM types Wharf serves.
pub mod types {
    pub const RESOURCE_GROUP: &str = "Microsoft.Resources/resourceGroups";
    pub const REGISTRY: &str = "Microsoft.ContainerRegistry/registries";
}
