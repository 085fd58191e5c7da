//! placeholder for the sqlite module, being written
