//! wharf-arm
