// Command zkbench will measure any ZooKeeper-compatible server the way
// ZooKeeper's authors did (saturation sweep, latency phases) and compare zkd
// with Apache ZooKeeper side by side.
//
// It is not built yet: today it says so and exits with status 2.
package main
