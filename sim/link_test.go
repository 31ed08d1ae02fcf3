package sim

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLinkImpairment(t *testing.T) {
	l := NewLink(func(ctx context.Context) (net.Conn, error) {
		a, b := net.Pipe()
		go io.Copy(io.Discard, b)
		return a, nil
	}, 1)
	c, err := l.Dial(context.Background())
	require.NoError(t, err)
	timeWrite := func() time.Duration {
		start := time.Now()
		_, err := c.Write([]byte("x"))
		require.NoError(t, err)
		return time.Since(start)
	}
	require.Less(t, timeWrite(), 20*time.Millisecond, "clean link")
	l.Set(Impairment{Latency: 50 * time.Millisecond})
	require.GreaterOrEqual(t, timeWrite(), 50*time.Millisecond, "an open connection picks up the change")
	l.Set(Impairment{Loss: 1, RTO: 30 * time.Millisecond})
	require.GreaterOrEqual(t, timeWrite(), 30*time.Millisecond, "a lost segment costs a retransmission timeout")
	l.Clear()
	require.Less(t, timeWrite(), 20*time.Millisecond)
}
