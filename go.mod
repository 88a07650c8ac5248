module hexcron

go 1.26.8

require (
	github.com/coreos/go-systemd/v22 v22.7.0 // indirect
	github.com/getkin/kin-openapi v0.153.0 // indirect
	github.com/lmittmann/tint v1.2.1 // indirect
	github.com/mattn/go-sqlite3 v1.14.53 // indirect
	github.com/prometheus/client_golang v1.25.0 // indirect
	github.com/robfig/cron/v3 v3.0.1 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
)
