// Command zkd will be a ZooKeeper-compatible server: `zkd` alone runs a
// standalone server on port 2181 with data in ./zkd-data, and `zkd zoo.cfg`
// runs the configuration in that file, as ZooKeeperServerMain does.
//
// The server is not built yet: today zkd says so and exits with status 2.
// One subcommand works already: `zkd purge [-n count] dataDir [dataLogDir]`
// removes old snapshots and txn logs the way ZooKeeper's zkCleanup.sh does.
package main
