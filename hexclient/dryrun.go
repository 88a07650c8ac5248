package hexclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// DryRun sends one RunProject with dryRun true for projectID (Hex: "perform a dry run
// that does not run the project"), through the same admission as a trigger: the
// trigger budget and the Ledger (Hex does not say that a dry run is free of the trigger
// caps, so it is counted as one), the project's turn and its 403 hold. It never
// retries and never reconciles: an ambiguous answer is returned as it is. It gives up
// waiting for the budget at deadline.
func (c *Client) DryRun(ctx context.Context, projectID string, body RunRequest, deadline time.Time) (*RunCreated, error) {
	const op = "run project (dry run)"
	body.DryRun = true
	b, err := marshalBody(body)
	if err != nil {
		return nil, fmt.Errorf("hexclient: dry run: %w", err)
	}
	t := &triggerRun{c: c, req: TriggerRequest{ProjectID: projectID, Deadline: deadline},
		log: c.log.With(KeyProject, projectID)}
	token, id, _, rbDone, err := t.admit(ctx)
	if err != nil {
		return nil, err
	}
	resp, sendErr := c.send(ctx, op, token, http.MethodPost, "/projects/"+url.PathEscape(projectID)+"/runs", nil, b)
	arrived := c.clock.Now()
	rbDone(arrived)
	if err := c.ledger.Complete(context.WithoutCancel(ctx), id, arrived); err != nil {
		t.log.Warn("could not record the attempt's completion in the ledger", KeyErr, err)
	}
	var apiErr *APIError
	class := ClassOK
	if sendErr != nil {
		errors.As(sendErr, &apiErr)
		class = apiErr.Class
	} else if class = Classify(resp.status, nil); class != ClassOK {
		apiErr = newHTTPError(op, resp.status, resp.header, resp.body, redactor(token))
	}
	// A dry run runs nothing: only a 403 says something about the project's access.
	var refused *ProjectRefusedError
	if class == ClassForbidden {
		refused = c.refuse(t.log, projectID, apiErr, arrived, true)
	} else {
		c.mu.Lock()
		if h := c.holds[projectID]; h != nil {
			h.probing = false
		}
		c.mu.Unlock()
	}
	c.endInflight(projectID)
	c.obs.OnTrigger(class.String())
	switch {
	case refused != nil:
		return nil, refused
	case apiErr != nil:
		return nil, apiErr
	}
	created, err := decodeRunCreated(resp.body)
	if err != nil {
		return nil, &APIError{Op: op, Status: resp.status, Class: ClassAmbiguous, Err: err}
	}
	return created, nil
}
