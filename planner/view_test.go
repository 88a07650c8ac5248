package planner

import (
	"strings"
	"testing"
)

// TestView: a schedule may run a saved Hex view (viewId), never together with input
// params, as Hex refuses that; each refusal names the line and where the params come
// from.
func TestView(t *testing.T) {
	const proj = "0b7f3c2a-1d4e-4f5a-9b6c-7d8e9f0a1b2c"
	conf, err := Parse("v.yaml", []byte(`schedules:
  - {name: a, project: `+proj+`, cron: "0 * * * *", view: 7d3e2c1b-aaaa-4bbb-8ccc-0123456789ab}
`))
	if err != nil {
		t.Fatal(err)
	}
	if s := conf.Schedules[0]; s.View != "7d3e2c1b-aaaa-4bbb-8ccc-0123456789ab" || s.InputParams(nil) != nil {
		t.Fatalf("schedule %+v", s)
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"with params", `schedules:
  - name: a
    project: ` + proj + `
    cron: "0 * * * *"
    params: {region: emea}
    view: v1
`, "v.yaml:6: schedules[0].view: cannot be combined with input params, as Hex refuses viewId together with inputParams (the view brings its own inputs); the input params come from its params (line 5)"},
		{"with a matrix", `schedules:
  - name: a
    project: ` + proj + `
    cron: "0 * * * *"
    matrix: {region: [emea, amer]}
    view: v1
`, "v.yaml:6: schedules[0].view: cannot be combined with input params, as Hex refuses viewId together with inputParams (the view brings its own inputs); the input params come from its matrix (line 5)"},
		{"with defaults.params", `defaults:
  params: {source: hexcron}
schedules:
  - {name: a, project: ` + proj + `, cron: "0 * * * *", view: v1}
`, "v.yaml:4: schedules[0].view: cannot be combined with input params, as Hex refuses viewId together with inputParams (the view brings its own inputs); the input params come from defaults.params (line 2), which applies to every schedule"},
		{"under defaults", `defaults:
  view: v1
schedules:
  - {name: a, project: ` + proj + `, cron: "0 * * * *"}
`, "v.yaml:2: defaults.view: cannot be set under defaults: set it on each schedule"},
		{"empty", `schedules:
  - {name: a, project: ` + proj + `, cron: "0 * * * *", view: " "}
`, `v.yaml:2: schedules[0].view: " " is not a Hex view id`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("v.yaml", []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}
