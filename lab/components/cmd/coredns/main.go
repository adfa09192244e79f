// Command coredns is CoreDNS (github.com/coredns/coredns, pinned in ../../go.mod) with only the plugins the
// lab's Corefiles use compiled in.
//
// Upstream's main imports core/plugin, which links every plugin (cloud DNS backends, etcd, ...). This one
// imports fourteen, and sets dnsserver.Directives to the same fourteen in the order of upstream's plugin.cfg
// (the order in which a request passes through them). Four more register themselves because these import
// them (debug, dnstap, metadata, transfer: `coredns -plugins` lists them), but a Corefile can name only a
// directive: any other plugin is rejected at start-up ("Unknown directive"), so the lab cannot come to
// depend on one by accident.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/erratic"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/hosts"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
	_ "github.com/coredns/coredns/plugin/template"
)

// directives are the compiled-in plugins in CoreDNS v1.15.0's plugin.cfg order ("prometheus" is the
// directive of plugin/metrics).
var directives = []string{
	"reload",
	"bind",
	"ready",
	"health",
	"prometheus",
	"errors",
	"log",
	"cache",
	"template",
	"hosts",
	"kubernetes",
	"loop",
	"forward",
	"erratic",
}

func main() {
	dnsserver.Directives = directives
	coremain.Run()
}
