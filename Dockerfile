# zkd in a container, laid out as the official ZooKeeper image is: the
# configuration in /conf, snapshots in /data, txn logs in /datalog, run as
# the user zookeeper (uid 1000), zoo.cfg written from ZOO_* variables when
# /conf has none (packaging/docker-entrypoint.sh). docs/operations.md.
FROM golang:1.26-alpine AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/zkd ./cmd/zkd

FROM alpine:3.22
RUN addgroup -S -g 1000 zookeeper && adduser -S -D -H -u 1000 -G zookeeper zookeeper \
	&& mkdir -p /conf /data /datalog && chown zookeeper:zookeeper /conf /data /datalog
COPY --from=build /out/zkd /usr/local/bin/zkd
COPY packaging/docker-entrypoint.sh /docker-entrypoint.sh
ENV ZOO_CONF_DIR=/conf ZOO_DATA_DIR=/data ZOO_DATA_LOG_DIR=/datalog
VOLUME ["/data", "/datalog"]
# client, quorum, election, AdminServer, metrics
EXPOSE 2181 2888 3888 8080 7000
USER zookeeper
ENTRYPOINT ["/docker-entrypoint.sh"]
CMD ["zkd", "/conf/zoo.cfg"]
