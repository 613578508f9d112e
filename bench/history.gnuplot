# bench/history.gnuplot: the ratios of make bench over time.  Run by
# bench/bench.sh as
#   gnuplot -e "hist='bench/results/history.csv'; out='bench/results/history.png'" bench/history.gnuplot
# hist is history.csv (a header row of column names, then one row per run:
# date (ISO 8601, UTC), commit, then ratios; the x axis is the run's
# number, its row, each "higher is better").
# Three panels, by column name: the read and write ratios near 1, the
# throughput ratios (L1 and L2 hits / SELECT 1 at each client count), and
# the cached / live ratios.  A column a run lacks is left out of its line.
if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {
    set terminal pngcairo size 1100,1100 font 'DejaVu Sans,9'
} else {
    set terminal png size 1100,1100
}
set output out
set datafile separator ','
set datafile missing ''
set termoption noenhanced
set xlabel 'run (the row of history.csv: its date and commit are there)'
set xtics 1
set xrange [0.7:*]
set offsets 0.3, 0.3, 0, 0
set lmargin at screen 0.07
set rmargin at screen 0.82
set grid ytics lc rgb '#dddddd'
set key outside right top
set ylabel 'ratio (higher is better)'
near1 = 'l1_select1 l1_call l2_select1 l2_peer single_watched_floor single_watched_plain bulk_floor_watched inval_1m_1k'
tput = 'tp_l1_1 tp_l1_4 tp_l1_16 tp_l1_32 tp_l2_1 tp_l2_4 tp_l2_16 tp_l2_32'
cached = 'fetch_live l3_live'
set multiplot layout 3,1 title 'make bench: ratios per run (bench/results/history.csv)'
set title 'read and write: L1 / SELECT 1, L1 / call floor, L2 / SELECT 1, L2 / pgmemcache, watched / floor, ...'
plot for [c in near1] hist using ($0):(column(c)) with linespoints title c
set title 'throughput: L1 and L2 hits / SELECT 1 at 1, 4, 16 and 32 clients'
plot for [c in tput] hist using ($0):(column(c)) with linespoints title c
set title 'cached fetch (L1 and L3 hits) / the live query'
set logscale y 10
plot for [c in cached] hist using ($0):(column(c)) with linespoints title c
unset multiplot
