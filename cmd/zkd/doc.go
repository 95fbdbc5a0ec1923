// Command zkd is the zkd server and its operator commands.
//
//	zkd                    standalone server on port 2181, data in ./zkd-data
//	zkd path/to/zoo.cfg    run with that configuration (ZooKeeper's keys)
//	zkd status [zoo.cfg]   print the server's mode, as zkServer.sh status does
//	zkd purge [-n count] dataDir [dataLogDir]
//	                       remove old snapshots and txn logs (zkCleanup.sh)
//
// SIGTERM or SIGINT stops the server cleanly. ZKD_LOG_LEVEL sets the log
// level (debug, info, warn, error).
package main
