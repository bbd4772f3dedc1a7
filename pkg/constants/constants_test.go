package constants

import (
	"net"
	"strconv"
	"testing"
)

func TestLocalAPIServerUsesAPIServerPort(t *testing.T) {
	if want := net.JoinHostPort("127.0.0.1", strconv.Itoa(APIServerPort)); LocalAPIServer != want {
		t.Errorf("LocalAPIServer = %s, want %s", LocalAPIServer, want)
	}
}
