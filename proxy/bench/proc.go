package bench

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ, the unit of /proc/<pid>/stat's CPU times: 100 on every Linux architecture Go
// supports (the kernel fixes it for user space regardless of CONFIG_HZ).
const clockTick = 100

// ProcSample is one reading of a process from /proc.
type ProcSample struct {
	// CPU is user plus system time.
	CPU time.Duration
	// RSS and HWM are VmRSS and VmHWM (peak RSS) in bytes.
	RSS, HWM int64
}

// ReadProc reads pid's CPU time from /proc/<pid>/stat and its RSS from /proc/<pid>/status.
func ReadProc(pid int) (ProcSample, error) {
	var s ProcSample
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, fmt.Errorf("bench: %w", err)
	}
	if s.CPU, err = parseStatCPU(stat); err != nil {
		return s, fmt.Errorf("bench: /proc/%d/stat: %w", pid, err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, fmt.Errorf("bench: %w", err)
	}
	if s.RSS, s.HWM, err = parseStatusRSS(status); err != nil {
		return s, fmt.Errorf("bench: /proc/%d/status: %w", pid, err)
	}
	return s, nil
}

// parseStatCPU takes utime and stime (fields 14 and 15) from a /proc/<pid>/stat line. The command name
// (field 2) may hold spaces and parentheses, so fields are counted after its last ')'.
func parseStatCPU(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("no command field")
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state); utime is field 14 → f[11], stime field 15 → f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("%d fields after the command, want at least 13", len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("utime %q stime %q", f[11], f[12])
	}
	return time.Duration(ut+st) * time.Second / clockTick, nil
}

// parseStatusRSS reads VmRSS and VmHWM (kB) from /proc/<pid>/status.
func parseStatusRSS(status []byte) (rss, hwm int64, err error) {
	found := 0
	for line := range strings.Lines(string(status)) {
		key, val, ok := strings.Cut(line, ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		f := strings.Fields(val)
		if len(f) != 2 || f[1] != "kB" {
			return 0, 0, fmt.Errorf("%s: unexpected %q", key, strings.TrimSpace(val))
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", key, err)
		}
		if key == "VmRSS" {
			rss = n << 10
		} else {
			hwm = n << 10
		}
		found++
	}
	if found != 2 {
		return 0, 0, fmt.Errorf("VmRSS or VmHWM missing")
	}
	return rss, hwm, nil
}

// SystemCPU is a reading of the aggregate "cpu" line of /proc/stat, in USER_HZ ticks.
type SystemCPU struct {
	Busy, Total uint64
}

// ReadSystemCPU reads /proc/stat.
func ReadSystemCPU() (SystemCPU, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return SystemCPU{}, fmt.Errorf("bench: %w", err)
	}
	return parseSystemCPU(b)
}

func parseSystemCPU(b []byte) (SystemCPU, error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return SystemCPU{}, fmt.Errorf("bench: /proc/stat: unexpected first line %q", line)
	}
	var s SystemCPU
	for i, v := range f[1:] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return SystemCPU{}, fmt.Errorf("bench: /proc/stat: field %d: %w", i+1, err)
		}
		// user nice system idle iowait irq softirq steal guest guest_nice: guest time is already inside
		// user and nice, idle and iowait are not busy.
		if i >= 8 {
			continue
		}
		s.Total += n
		if i != 3 && i != 4 {
			s.Busy += n
		}
	}
	return s, nil
}

// Utilisation is the busy share of all cores between two readings, 0..1.
func Utilisation(a, b SystemCPU) float64 {
	if b.Total <= a.Total {
		return 0
	}
	return float64(b.Busy-a.Busy) / float64(b.Total-a.Total)
}

// LoadAvg returns the 1-minute load average from /proc/loadavg.
func LoadAvg() (float64, error) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, fmt.Errorf("bench: %w", err)
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, fmt.Errorf("bench: /proc/loadavg is empty")
	}
	return strconv.ParseFloat(f[0], 64)
}
