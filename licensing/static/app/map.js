// The map page: draws the premises in #map-data with Leaflet (leaflet/leaflet.js, loaded
// before this file). No inline script or style: colours come from app/map.css classes and
// every text is set with textContent. With no tiles (offline), the markers still draw on
// a plain background and a status line says so; the table below the map lists the same
// premises either way.
;(function () {
  'use strict'

  var container = document.getElementById('map')
  var dataElement = document.getElementById('map-data')
  var status = document.getElementById('map-status')
  if (!container || !dataElement) return

  function say (message) {
    if (!status) return
    status.textContent = message
    status.hidden = false
  }

  if (typeof window.L === 'undefined') {
    say('The map could not be shown. The table below lists the same premises.')
    return
  }
  var L = window.L
  var data = JSON.parse(dataElement.textContent)
  var premises = data.premises || []
  var labels = data.stateLabels || {}
  var initials = data.stateInitials || {}

  var map = L.map(container, { scrollWheelZoom: false })
  var tiles = L.tileLayer(data.tiles.url, {
    attribution: data.tiles.attribution,
    maxZoom: 19
  })
  var tileFailureShown = false
  tiles.on('tileerror', function () {
    if (tileFailureShown) return
    tileFailureShown = true
    say('The background map could not be loaded. The markers still show where the premises are.')
  })
  tiles.addTo(map)

  function popupFor (item) {
    var box = document.createElement('div')
    var link = document.createElement('a')
    link.className = 'govuk-link'
    link.href = item.url
    link.textContent = item.name
    var state = document.createElement('p')
    state.className = 'govuk-body-s govuk-!-margin-bottom-0'
    var count = item.incidents + ' incident' + (item.incidents === 1 ? '' : 's')
    state.textContent = (labels[item.state] || item.state) + '. ' + count +
      ' in the last ' + data.densityDays + ' days.'
    box.appendChild(link)
    box.appendChild(state)
    return box
  }

  var bounds = []
  var density = L.layerGroup().addTo(map)
  var markers = L.layerGroup().addTo(map)
  premises.forEach(function (item) {
    var position = [item.lat, item.lon]
    bounds.push(position)
    if (item.radius > 0) {
      L.circleMarker(position, {
        radius: item.radius,
        color: '#1d70b8',
        weight: 1,
        fillColor: '#1d70b8',
        fillOpacity: 0.25,
        interactive: false,
        className: 'app-map-density'
      }).addTo(density)
    }
    var label = labels[item.state] || item.state
    var initial = document.createElement('span')
    initial.textContent = initials[item.state] || ''
    var icon = L.divIcon({
      className: 'app-map-marker app-map-marker--' + item.state,
      html: initial,
      iconSize: [22, 22],
      iconAnchor: [11, 11],
      popupAnchor: [0, -11]
    })
    var marker = L.marker(position, {
      icon: icon,
      title: item.name + ' (' + label + ')',
      alt: item.name,
      riseOnHover: true
    })
    marker.bindPopup(popupFor(item))
    marker.on('add', function () {
      var element = marker.getElement()
      if (element) {
        element.setAttribute('data-premises-id', String(item.id))
        element.setAttribute('data-state', item.state)
      }
    })
    marker.addTo(markers)
  })

  if (bounds.length) {
    map.fitBounds(bounds, { padding: [30, 30], maxZoom: 16 })
  } else {
    map.setView([54.0, -2.5], 6)
    say('None of these premises has a location to show on the map.')
  }
})()
