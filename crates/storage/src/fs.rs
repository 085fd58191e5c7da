//! placeholder for the fs module, being written
