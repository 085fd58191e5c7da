//! wharf-identity
