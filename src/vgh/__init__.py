"""Value-gradient hypothesis replication library."""
