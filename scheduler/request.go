package scheduler

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"hexcron/hexclient"
	"hexcron/planner"
)

// RunRequest is the RunProject body of a run of s with the given inputParams (a
// firing's: s.InputParams(matrix); a manual run's: ManualInputs): its cache and
// publish flags, its saved view and its notifications. The daemon and `hexcron
// trigger` both build it here.
func RunRequest(s *planner.Schedule, inputs map[string]any) hexclient.RunRequest {
	req := hexclient.RunRequest{
		InputParams:            inputs,
		UseCachedSQLResults:    s.UseCachedSQL,
		UpdatePublishedResults: s.UpdatePublishedResults,
		ViewID:                 s.View,
	}
	for _, n := range s.Notify {
		req.Notifications = append(req.Notifications, hexclient.Notification{
			Type:                     n.HexType(),
			IncludeSuccessScreenshot: n.IncludeSuccessScreenshot,
			SlackChannelIDs:          n.SlackChannels,
			UserIDs:                  n.UserIDs,
			GroupIDs:                 n.GroupIDs,
		})
	}
	return req
}

// runRequest is the RunProject body of firing f of s.
func runRequest(s *planner.Schedule, f planner.Firing) hexclient.RunRequest {
	return RunRequest(s, s.InputParams(f.Matrix))
}

// ManualInputs is the inputParams of a manual run of s: the schedule's params with the
// given k=v overrides on top (in order), and the matrix combination they pick. A value
// replacing a non-string param is read as JSON (limit=10 sends a number). A schedule
// with a matrix needs one override per matrix key.
func ManualInputs(s *planner.Schedule, params [][2]string) (map[string]string, map[string]any, error) {
	given := map[string]string{}
	for _, kv := range params {
		given[kv[0]] = kv[1]
	}
	var matrix map[string]string
	if len(s.Matrix) > 0 {
		matrix = map[string]string{}
		var missing []string
		for k := range s.Matrix {
			if v, ok := given[k]; ok {
				matrix[k] = v
			} else {
				missing = append(missing, k)
			}
		}
		if len(missing) > 0 {
			sort.Strings(missing)
			for i, k := range missing {
				missing[i] = fmt.Sprintf("--param %s=%s", k, strings.Join(s.Matrix[k], "|"))
			}
			return nil, nil, fmt.Errorf("schedule %s has a matrix: pick the combination to run with %s", s.Name, strings.Join(missing, " "))
		}
	}
	inputs := s.InputParams(matrix)
	if inputs == nil {
		inputs = map[string]any{}
	}
	for _, kv := range params {
		k, v := kv[0], kv[1]
		if old, ok := inputs[k]; ok {
			if _, isString := old.(string); !isString && old != nil {
				var typed any
				if err := json.Unmarshal([]byte(v), &typed); err != nil {
					return nil, nil, fmt.Errorf("--param %s=%s: the schedule's %s is %T, so the value is read as JSON: %v", k, v, k, old, err)
				}
				inputs[k] = typed
				continue
			}
		}
		inputs[k] = v
	}
	if len(inputs) == 0 {
		inputs = nil
	}
	return matrix, inputs, nil
}
