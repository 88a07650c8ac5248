package scheduler

import (
	"hexcron/hexclient"
	"hexcron/planner"
)

// runRequest is the RunProject body for one firing of s: its params with the firing's
// matrix values on top, its cache and publish flags, and its notifications.
func runRequest(s *planner.Schedule, f planner.Firing) hexclient.RunRequest {
	req := hexclient.RunRequest{
		InputParams:            s.InputParams(f.Matrix),
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
