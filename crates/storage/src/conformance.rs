//! placeholder for the conformance module, being written
