package tui

import (
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/tether-dev/tether/cluster"
)

func (s *workbenchSource) Live() <-chan Live { return s.live }

// sendLive replaces what is waiting on s.live with l: the UI wants the
// newest state, and the informers must never wait for it.
func (s *workbenchSource) sendLive(l Live) {
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	select {
	case s.live <- l:
	default:
		select {
		case <-s.live:
		default:
		}
		s.live <- l // the only sender holds liveMu, so there is room now
	}
}

// watchHub keeps the hub's watches in step with the probe: running while
// the hub is ready, restarted when it comes back on another endpoint, and
// stopped when it is gone.
func (s *workbenchSource) watchHub(snap Snapshot) {
	var hub *ClusterInfo
	for i := range snap.Clusters {
		if snap.Clusters[i].Role == cluster.RoleHub {
			hub = &snap.Clusters[i]
			break
		}
	}
	if hub == nil || !hub.Ready {
		s.stopWatch()
		return
	}
	cfg, err := s.wb.RESTConfig(hub.Name)
	if err != nil {
		s.stopWatch()
		return
	}
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	if s.closed || s.watch != nil && s.watch.hub == hub.Name && s.watch.host == cfg.Host {
		return
	}
	s.stopWatchLocked()
	// No client timeout: it would cut every watch after that long.
	cfg.WarningHandler = rest.NoWarnings{}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		s.log.Warn("watch the hub", "hub", hub.Name, "err", err)
		return
	}
	s.log.Info("watching the hub's Applications and Agents", "hub", hub.Name, "endpoint", cfg.Host)
	s.watch = startHubWatch(dyn, hub.Name, cfg.Host, s.sendLive, s.log)
}

func (s *workbenchSource) stopWatch() {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	s.stopWatchLocked()
}

// stopWatchLocked stops the watch and tells the UI, which lists through
// the Source again.
func (s *workbenchSource) stopWatchLocked() {
	if s.watch == nil {
		return
	}
	s.log.Info("stopped watching the hub", "hub", s.watch.hub)
	s.watch.close()
	s.watch = nil
	s.sendLive(Live{})
}
