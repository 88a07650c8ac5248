package main

import (
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// writeTable writes rows as columns two spaces apart, left-aligned, without trailing
// blanks. When width > 0 and the table is wider, it cuts the cells of the columns in
// cut, in that order (each down to no less than its first row's width, kept between
// 10 and 16 runes), ending a cut
// cell with "…", until the table fits or nothing more can be cut.
func writeTable(w io.Writer, rows [][]string, width int, cut ...int) {
	if len(rows) == 0 {
		return
	}
	n := 0
	for _, r := range rows {
		n = max(n, len(r))
	}
	widths := make([]int, n)
	measure := func() int {
		total := 2 * (n - 1)
		for c := range widths {
			widths[c] = 0
			for _, r := range rows {
				if c < len(r) {
					widths[c] = max(widths[c], utf8.RuneCountInString(r[c]))
				}
			}
			total += widths[c]
		}
		return total
	}
	total := measure()
	for _, c := range cut {
		if width <= 0 || total <= width || c >= n {
			break
		}
		floor := max(10, min(16, utf8.RuneCountInString(rows[0][c]))) // the header, when short
		limit := max(floor, widths[c]-(total-width))
		for _, r := range rows {
			if c < len(r) {
				r[c] = cutText(r[c], limit)
			}
		}
		total = measure()
	}
	var b strings.Builder
	for _, r := range rows {
		b.Reset()
		for c, cell := range r {
			b.WriteString(cell)
			if c < len(r)-1 {
				b.WriteString(strings.Repeat(" ", widths[c]-utf8.RuneCountInString(cell)+2))
			}
		}
		io.WriteString(w, strings.TrimRight(b.String(), " ")+"\n")
	}
}

// cutText is s cut to at most n runes, ending with "…" when cut.
func cutText(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return strings.TrimRight(string(r[:n-1]), " ") + "…"
}

// fmtCompact is t in loc as short as stays unambiguous next to now: the time of day
// when it falls on now's date, "Jan 02 15:04:05" in now's year, the full date
// otherwise; "-" when t is zero.
func fmtCompact(t, now time.Time, loc *time.Location) string {
	if t.IsZero() {
		return "-"
	}
	lt, ln := t.In(loc), now.In(loc)
	switch {
	case lt.Year() == ln.Year() && lt.YearDay() == ln.YearDay():
		return lt.Format(time.TimeOnly)
	case lt.Year() == ln.Year():
		return lt.Format("Jan 02 15:04:05")
	}
	return lt.Format(timeLayout)
}
