# demo/latency.gnuplot: the plot of make demo.  Run by demo/demo.sh as
#   gnuplot -e "datadir='DIR'; outfile='FILE'" demo/latency.gnuplot
# DIR holds what demo/workload.py wrote: latency.dat (one CDF block per level, its title on the
# block's first line), timeline.dat (reads per second by level: sec l1 l2 l3 compute), bursts.dat (the writer's
# grading bursts, start and end in seconds) and meta.gp (nseries, nbursts, xmax, ymax, subtitle).
load datadir.'/meta.gp'
set terminal pngcairo size 1400,720 font 'DejaVu Sans,10'
set output outfile
set multiplot layout 1,2 title "mlcache demo: LMS dashboard reads by cache level\n{/*0.85 ".subtitle."}"

# Left: the latency distribution of each level (CDF), log scale.
set title 'Read latency (CDF), as the client sees it'
set logscale x 10
set xlabel 'latency (ms, log scale)'
set ylabel 'reads at or below (%)'
set yrange [0:100]
set ytics 10
set bmargin 12
set grid xtics mxtics ytics lc rgb '#dddddd'
set key at screen 0.06, 0.15 left top Left reverse vertical maxrows 6 font ',9' width 2
set style line 1 lw 2.5 lc rgb '#1a9850'
set style line 2 lw 2.5 lc rgb '#4575b4'
set style line 3 lw 2.5 lc rgb '#984ea3'
set style line 4 lw 2.5 lc rgb '#fdae61'
set style line 5 lw 2.5 lc rgb '#d73027' dt 2
set style line 6 lw 2 lc rgb '#777777' dt 3
plot for [i=0:nseries-1] datadir.'/latency.dat' index i using 1:2 with lines ls i+1 title columnheader(1)

# Right: the reads that missed L1, per second, by the level that answered; bursts shaded.
unset logscale x
unset grid
set grid ytics lc rgb '#dddddd'
set title 'Reads that missed L1, per second, by the level that answered'
set xlabel 'time (s); shaded: the writer grading'
set ylabel 'reads per second'
set yrange [0:ymax]
set ytics autofreq
set xrange [0:xmax]
set key at screen 0.56, 0.15 left top Left reverse vertical maxrows 4 font ',9' width 2
set style fill solid 0.85 noborder
set boxwidth 1.0 absolute
tl = datadir.'/timeline.dat'
if (nbursts > 0) {
    plot datadir.'/bursts.dat' using (($1+$2)/2):(ymax):($2-$1) with boxes fs solid 0.12 lc rgb '#d73027' title 'grading burst', \
         tl using 1:($3+$4+$5) with boxes lc rgb '#fdae61' title 'computed (miss)', \
         '' using 1:($3+$4) with boxes lc rgb '#984ea3' title 'L3', \
         '' using 1:3 with boxes lc rgb '#4575b4' title 'L2'
} else {
    plot tl using 1:($3+$4+$5) with boxes lc rgb '#fdae61' title 'computed (miss)', \
         '' using 1:($3+$4) with boxes lc rgb '#984ea3' title 'L3', \
         '' using 1:3 with boxes lc rgb '#4575b4' title 'L2'
}
unset multiplot
