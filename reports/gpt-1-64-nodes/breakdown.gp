# breakdown: written by fsdpsim. Draw it again with: gnuplot breakdown.gp
# (in this folder; it reads breakdown.dat)

# fsdpsim figure style: the top of every .gp script fsdpsim writes (src/plot embeds this file).
# Change fonts, sizes and colours here, or in a written script, then re-run: gnuplot NAME.gp
#
# Sized for slides: 16:9, fonts and lines readable from the back of a room.
# Palette: Okabe & Ito, "Color Universal Design" (https://jfly.uni-koeln.de/color/), safe for the
# common forms of colour blindness; line styles and point types differ too, for greyscale prints.
font_name = "Sans"
font_size = 16          # points in the PDF; PNG and SVG scale it to their size in pixels
png_size = "1600,900"   # pixels
pdf_size = "13.333in,7.5in"  # a 16:9 PowerPoint/Beamer slide
line_width = 2

okabe_blue = "#0072B2"
okabe_orange = "#E69F00"
okabe_vermillion = "#D55E00"
okabe_green = "#009E73"
okabe_purple = "#CC79A7"
okabe_sky = "#56B4E9"
okabe_yellow = "#F0E442"
okabe_black = "#000000"
grey = "#999999"

set linetype 1 lc rgb okabe_blue lw 3 pt 7 ps 1.8 dt 1
set linetype 2 lc rgb okabe_orange lw 3 pt 5 ps 1.8 dt 1
set linetype 3 lc rgb okabe_green lw 3 pt 9 ps 2.0 dt 1
set linetype 4 lc rgb okabe_vermillion lw 3 pt 13 ps 2.0 dt 1
set linetype 5 lc rgb okabe_purple lw 3 pt 11 ps 2.0 dt 1
set linetype 6 lc rgb okabe_sky lw 3 pt 15 ps 2.0 dt 1
set linetype 7 lc rgb okabe_yellow lw 3 pt 3 ps 2.0 dt 1
set linetype 8 lc rgb okabe_black lw 3 pt 1 ps 2.0 dt 1
set linetype cycle 8

set border lw 1.5
set grid back lc rgb "#d0d0d0" lw 1
set key noenhanced samplen 2 spacing 1.1
set tics nomirror out
set style fill solid 1.0 border rgb "#404040"
set datafile separator whitespace
set datafile missing "NaN"

# --- the figure ---
set label 1000 "Where the step time goes\nGPT-3 XL (1.3B) on juwels-booster, 1 to 64 nodes x 4 GPUs" at screen 0.5, screen 0.935 center front
set tmargin 5
set xlabel "nodes"
set ylabel "ms per step"
set x2tics ("ddp" 3, "full_shard" 11, "hybrid_shard" 19) scale 0
set link x2
set tmargin 6.5
set xtics ("1" 0, "2" 1, "4" 2, "8" 3, "16" 4, "32" 5, "64" 6, "1" 8, "2" 9, "4" 10, "8" 11, "16" 12, "32" 13, "64" 14, "1" 16, "2" 17, "4" 18, "8" 19, "16" 20, "32" 21, "64" 22)
set xrange [-0.7:22.7]
set yrange [0:715.687]
set key outside bottom center horizontal
unset grid
set grid ytics

# the formats to draw: any of png svg pdf
formats = "png"
do for [format in formats] {
    if (format eq "png") { set terminal pngcairo size @png_size noenhanced font sprintf("%s,%g", font_name, font_size*5/3.0) linewidth line_width }
    if (format eq "svg") { set terminal svg size @png_size noenhanced font sprintf("%s,%g", font_name, font_size*5/3.0) linewidth line_width }
    if (format eq "pdf") { set terminal pdfcairo size @pdf_size noenhanced font sprintf("%s,%g", font_name, font_size) linewidth line_width }
    set output "breakdown.".format
    plot "breakdown.dat" index 0 using 1:(($2+$3)/2):($1-0.38):($1+0.38):2:3 with boxxyerror fc rgb okabe_blue fs solid 1.0 noborder title "compute", \
        "breakdown.dat" index 1 using 1:(($2+$3)/2):($1-0.38):($1+0.38):2:3 with boxxyerror fc rgb okabe_vermillion fs solid 1.0 noborder title "exposed communication", \
        "breakdown.dat" index 2 using 1:(($2+$3)/2):($1-0.38):($1+0.38):2:3 with boxxyerror fc rgb grey fs solid 1.0 noborder title "other waiting"
    unset output
}
