package bench

import (
	"os"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	cases := []struct {
		name    string
		stat    string
		want    time.Duration
		wantErr bool
	}{
		{"utime plus stime in ticks of 10 ms", "1234 (timstack) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 100 0 0", 3 * time.Second, false},
		{"a command with spaces and parentheses does not shift the fields", "7 (a) b (c)) R 1 7 7 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 1 0 0", 30 * time.Millisecond, false},
		{"a truncated line is an error", "7 (x) R 1 2 3", 0, true},
		{"no command field is an error", "7 x R", 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tc.stat))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("got %s, %v; want %s, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestParseStatusRSS(t *testing.T) {
	rss, hwm, err := parseStatusRSS([]byte("Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\nThreads:\t3\n"))
	if err != nil || rss != 1024<<10 || hwm != 2048<<10 {
		t.Fatalf("rss %d hwm %d err %v", rss, hwm, err)
	}
	if _, _, err := parseStatusRSS([]byte("Name:\tkernel thread\n")); err == nil {
		t.Fatal("a status without VmRSS was accepted")
	}
}

func TestParseSystemCPUCountsIdleAndIOWaitAsNotBusy(t *testing.T) {
	s, err := parseSystemCPU([]byte("cpu  100 10 50 800 40 0 0 0 30 0\ncpu0 1 2 3 4\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Busy != 160 || s.Total != 1000 {
		t.Fatalf("%+v, want busy 160 of 1000 (guest time is inside user)", s)
	}
	if u := Utilisation(SystemCPU{Busy: 0, Total: 0}, s); u != 0.16 {
		t.Fatalf("utilisation %v", u)
	}
	if _, err := parseSystemCPU([]byte("intr 1 2 3")); err == nil {
		t.Fatal("a file without the cpu line was accepted")
	}
}

func TestReadProcOfThisProcess(t *testing.T) {
	s, err := ReadProc(os.Getpid())
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	if s.RSS <= 0 || s.HWM < s.RSS {
		t.Fatalf("%+v", s)
	}
	if _, err := ReadSystemCPU(); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadAvg(); err != nil {
		t.Fatal(err)
	}
}
