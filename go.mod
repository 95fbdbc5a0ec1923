module zkd

go 1.26.8
