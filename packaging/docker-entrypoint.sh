#!/bin/sh
# zkd's container entry point. Without a zoo.cfg in $ZOO_CONF_DIR it
# writes one from the environment, with the variables the official
# ZooKeeper image reads (ZOO_MY_ID, ZOO_SERVERS, ZOO_TICK_TIME, ...), so a
# compose file written for that image runs zkd unchanged. It writes
# $ZOO_DATA_DIR/myid when missing, then runs the command it is given
# (zkd /conf/zoo.cfg by default).
set -eu

: "${ZOO_CONF_DIR:=/conf}"
: "${ZOO_DATA_DIR:=/data}"
: "${ZOO_DATA_LOG_DIR:=/datalog}"

config="$ZOO_CONF_DIR/zoo.cfg"
if [ ! -f "$config" ]; then
	{
		echo "dataDir=$ZOO_DATA_DIR"
		echo "dataLogDir=$ZOO_DATA_LOG_DIR"
		echo "tickTime=${ZOO_TICK_TIME:-2000}"
		echo "initLimit=${ZOO_INIT_LIMIT:-5}"
		echo "syncLimit=${ZOO_SYNC_LIMIT:-2}"
		echo "autopurge.snapRetainCount=${ZOO_AUTOPURGE_SNAPRETAINCOUNT:-3}"
		echo "autopurge.purgeInterval=${ZOO_AUTOPURGE_PURGEINTERVAL:-0}"
		echo "maxClientCnxns=${ZOO_MAX_CLIENT_CNXNS:-60}"
		echo "standaloneEnabled=${ZOO_STANDALONE_ENABLED:-true}"
		echo "admin.enableServer=${ZOO_ADMINSERVER_ENABLED:-true}"
		# One server line is a standalone server with that client port.
		for server in ${ZOO_SERVERS:-server.1=localhost:2888:3888;2181}; do
			echo "$server"
		done
		if [ -n "${ZOO_4LW_COMMANDS_WHITELIST:-}" ]; then
			echo "4lw.commands.whitelist=$ZOO_4LW_COMMANDS_WHITELIST"
		fi
		for entry in ${ZOO_CFG_EXTRA:-}; do
			echo "$entry"
		done
	} >"$config"
fi

mkdir -p "$ZOO_DATA_DIR" "$ZOO_DATA_LOG_DIR"
if [ ! -f "$ZOO_DATA_DIR/myid" ]; then
	echo "${ZOO_MY_ID:-1}" >"$ZOO_DATA_DIR/myid"
fi

exec "$@"
