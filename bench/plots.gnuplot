# bench/plots.gnuplot: the plots of make bench.  Run by bench/bench.sh as
#   gnuplot -e "datadir='DIR'; outdir='OUT'" bench/plots.gnuplot
# DIR holds what bench.sh wrote: read.dat ("label" tps, one line per read:
# SELECT 1, the get and fetch hits, the live query), write.dat ("variant"
# single-row-tps 100k-row-ms, one line per write variant) and meta.gp
# (subtitle, asg: strings for the titles, in enhanced text, where an
# underscore is written "\\_").  Writes OUT/read.png and OUT/write.png, with
# pngcairo if this gnuplot has it, else png.
load datadir.'/meta.gp'
if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {
    set terminal pngcairo size 1100,620 font 'DejaVu Sans,10'
} else {
    set terminal png size 1100,620
}
set style fill solid 0.85 noborder
set boxwidth 0.6
set grid ytics lc rgb '#dddddd'
unset key
set xtics nomirror scale 0
set ytics nomirror
set offsets 0, 0, graph 0.08, 0

# ---- read: tps per read, log scale; the references (SELECT 1, the live
# query) grey, the cache's hits coloured.
set output outdir.'/read.png'
set title "mlcache read group: transactions per second, one client\n{/*0.8 ".asg."}\n{/*0.8 ".subtitle."}"
set ylabel 'tps (log scale)'
set logscale y 10
set format y '%.0f'
set yrange [1:*]
set xrange [-0.6:*]
colour(l) = (l eq 'SELECT 1' || l eq 'live query' || l eq 'call floor') ? 0x999999 : (l eq 'pgmemcache') ? 0xd73027 : 0x4575b4
plot datadir.'/read.dat' using 0:2:(colour(strcol(1))):xtic(1) with boxes lc rgb variable, \
     '' using 0:2:(sprintf('%.1f', $2)) with labels offset 0,0.8 font ',9'

# ---- write: single-row tps (left) and 100k-row ms (right) per variant.
unset logscale y
set format y '% h'
set output outdir.'/write.png'
set multiplot layout 1,2 title "mlcache write group: the same 100k-row table without triggers and with each trigger\n{/*0.8 ".subtitle."}"
wcolour(l) = (l eq 'plain') ? 0x999999 : (l eq 'no-op triggers') ? 0xfdae61 : (l eq 'watched') ? 0x4575b4 : 0xd73027
set title 'single-row UPDATE commits (tps, more is better)'
set ylabel 'tps'
set yrange [0:*]
plot datadir.'/write.dat' using 0:2:(wcolour(strcol(1))):xtic(1) with boxes lc rgb variable, \
     '' using 0:2:(sprintf('%.0f', $2)) with labels offset 0,0.8 font ',9'
set title '100k-row UPDATE, COMMIT included (ms, less is better)'
set ylabel 'ms'
plot datadir.'/write.dat' using 0:3:(wcolour(strcol(1))):xtic(1) with boxes lc rgb variable, \
     '' using 0:3:(sprintf('%.0f', $3)) with labels offset 0,0.8 font ',9'
unset multiplot
