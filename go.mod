module zkd

go 1.26.8

require (
	github.com/cespare/xxhash/v2 v2.3.0
	github.com/tidwall/btree v1.8.2
)

require github.com/klauspost/compress v1.20.3 // indirect
