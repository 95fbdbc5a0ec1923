// Package zkref starts Apache ZooKeeper 3.8 from the Debian package
// (`zookeeper`) as a standalone server on a loopback port, so that tests and
// zkbench can run the same requests against the reference and against zkd.
package zkref
