# chart.gp: the comparison benchmark's bar chart: end-to-end records/s of each system for
# 100-byte and 1,000-byte records, log scale.
# Usage: gnuplot -e "datafile='chart.dat'; outfile='chart.png'; reps=3; subtitle='...'" chart.gp
if (!exists("datafile")) datafile = 'chart.dat'
if (!exists("outfile")) outfile = 'chart.png'
if (!exists("reps")) reps = 3
if (!exists("subtitle")) subtitle = ''

set terminal pngcairo size 1100,600 font "sans,11" noenhanced
set output outfile
set title sprintf("Store and forward to a receiver that was offline: records/s end to end (median of %d; higher is better)\n%s", reps, subtitle)
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set format y "%.0s%c"
set ylabel "records/s (log scale)"
set yrange [1000:*]
set grid ytics
set key top left
set xtics nomirror rotate by -15
set datafile missing "0"

plot datafile using 2:xtic(1) title "100-byte records" linecolor rgb "#c0392b", \
     ''       using 3        title "1,000-byte records" linecolor rgb "#2c7fb8", \
     ''       using 0:2:(sprintf("%.0f", $2)) with labels offset char -2.2,0.7 font ",8" notitle, \
     ''       using 0:3:(sprintf("%.0f", $3)) with labels offset char 2.2,0.7 font ",8" notitle
