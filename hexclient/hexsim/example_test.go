package hexsim_test

import (
	"fmt"
	"net/http"
	"time"

	"hexcron/hexclient/hexsim"
)

// A test serves the sim on an in-memory network (inside a synctest bubble this is the
// only way: goroutines blocked on real sockets are not durably blocked), points a
// client at http://hexsim/api/v1 and reads the ledger afterwards.
func Example() {
	sim := hexsim.New(hexsim.Config{Seed: 1, Faults: hexsim.Faults{Next: []hexsim.Fault{hexsim.Fault5xxAfterCreate}}})
	pn := hexsim.NewPipeNet()
	stop := pn.Serve(sim)
	defer stop()
	client := &http.Client{Transport: pn.Transport(), Timeout: 10 * time.Second}

	for range 2 {
		req, _ := http.NewRequest("POST", "http://hexsim/api/v1/projects/0b7f3c2a-1d4e-4f5a-9b6c-7d8e9f0a1b2c/runs", nil)
		req.Header.Set("Authorization", "Bearer hxtp_example")
		res, err := client.Do(req)
		if err != nil {
			panic(err)
		}
		res.Body.Close()
		fmt.Println(res.StatusCode)
	}
	for _, r := range sim.Requests() {
		fmt.Println(r.Op, r.Status, r.Fault, r.RunCreated != "")
	}
	fmt.Println(len(sim.Runs()), "runs")
	// Output:
	// 500
	// 201
	// RunProject 500 5xx-after-create true
	// RunProject 201  true
	// 2 runs
}
